"""Training: which clips and crops each epoch uses (`data`), how batches reach torch
(`loaders`: DALI or a DataLoader), augmentation, losses, the LR schedule and the loop
(`loop.train`)."""
