// augment.h: image augmentations used by the image stages: the horizontal
// flip (ADM/LightningDiT cache both flip variants of each latent; the store
// keeps mu/sigma of the flipped image beside the original) and the
// translation `train --model classifier --shift` draws.
// Not here: random crops, colour jitter (not used by the paper's pipeline).
#ifndef DATA_AUGMENT_H
#define DATA_AUGMENT_H

// out (B, C, H, W) = inp mirrored along W. out must not alias inp.
void image_hflip(float *out, const float *inp, int B, int C, int H, int W);
// out (C, H, W): inp moved dy rows down and dx columns right (negative: up,
// left); pixels moved in from outside take `fill`. out must not alias inp.
void image_shift(float *out, const float *inp, int C, int H, int W, int dy, int dx, float fill);

#endif
