from django.db import models


class LocalStripeObject(models.Model):
    """The demo's stand-in for Stripe's servers (no STRIPE_SECRET_KEY, DEBUG on).

    Holds customers, checkout sessions and subscriptions in Stripe's own JSON
    shapes, so the local test checkout drives the same fulfilment and webhook
    code as the real thing. This app is not installed when a Stripe key is set.
    """

    id = models.CharField(max_length=64, primary_key=True)
    object = models.CharField(max_length=40)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id
