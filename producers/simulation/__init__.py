"""The journey simulator's parts: the world's parameters (`catalog`), people (`customers`, `journeys`),
how events arrive (`arrival`) and the ground truth (`truth`). `touchpoint.producers.simulator` puts them together."""
