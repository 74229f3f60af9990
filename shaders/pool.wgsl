// Spatial max/average pooling and rotation pooling, forward and backward.
