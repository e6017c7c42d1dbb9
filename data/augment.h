// augment.h: image augmentations used by the image stages. Only the
// horizontal flip for now (ADM/LightningDiT cache both flip variants of each
// latent; the store keeps mu/sigma of the flipped image beside the original).
// Not here: random crops, colour jitter (not used by the paper's pipeline).
#ifndef DATA_AUGMENT_H
#define DATA_AUGMENT_H

// out (B, C, H, W) = inp mirrored along W. out must not alias inp.
void image_hflip(float *out, const float *inp, int B, int C, int H, int W);

#endif
