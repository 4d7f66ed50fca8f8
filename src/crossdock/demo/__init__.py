"""``crossdock demo``: the order-to-cash chain running against the four sandbox systems."""
