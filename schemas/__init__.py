"""The contracts churnwatch speaks: input events, alert events, and the one JSON codec."""
