"""A trained run applied to a store split: sliding-window inference (`inference`), Kaggle
submissions, evaluation against labels and noisy-clip selection (`scoring`), with the
settings they share (`settings.PredictConfig`)."""
