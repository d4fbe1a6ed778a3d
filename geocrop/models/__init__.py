"""torch `nn.Module`s: the ResMLP encoder, projectors and the temporal heads. No file I/O."""
