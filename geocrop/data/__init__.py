"""Data logic above io: labelled samples, class maps, pretraining pairs and shards, splits. No torch."""
