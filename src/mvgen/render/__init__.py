"""A render's middle: its state, producing slots, the executors that run them, the assembly."""
