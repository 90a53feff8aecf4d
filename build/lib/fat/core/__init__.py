"""The ground floor: errors, clip ids, the FSDKaggle2019 layout, labels, lwlrap, feature
settings, typed settings records and devices. Nothing here imports the rest of `fat`."""
