"""Model conversion: an exported Paddle inference model -> serving_server/ + serving_client/ (Paddle Serving layout)."""
