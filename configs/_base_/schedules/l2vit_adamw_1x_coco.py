# The L2ViT detection schedule, 1x: mmdet's 1x schedule (12 epochs, linear
# warm-up over 500 iterations, lr x0.1 at epochs 8 and 11) with AdamW
# instead of SGD: lr 1e-4, weight decay 0.05 on all parameters, no gradient
# clipping, for a total batch of 16 (8 GPUs x 2 images).
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05))
