// Image and feature-map transforms: rot90, the C4 action on P4 maps, translation, padding.
