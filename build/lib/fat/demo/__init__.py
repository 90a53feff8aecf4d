"""The pipeline end to end on generated data: a synthetic dataset in the FSDKaggle2019 layout
(`data`) and the demo that featurizes, trains, predicts, evaluates and reports on it
(`pipeline`)."""
