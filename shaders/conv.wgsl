// 2-D convolution (cross-correlation), forward and backward.
