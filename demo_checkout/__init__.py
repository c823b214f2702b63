"""The keyless demo's stand-in for Stripe Checkout and the Customer Portal.

Installed (config.settings) and routed (config.urls) only with DEBUG on and
no STRIPE_SECRET_KEY. It depends on the product (subscriptions); the product
never imports it.
"""
