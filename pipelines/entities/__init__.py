"""Entity plug-ins: what differs between products, orders and customers."""
