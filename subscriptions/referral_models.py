"""Referrals: who brought whom, what each decision was and why, and the rewards.

Kept apart from subscriptions.models (which imports this module at its end,
so Django finds the models) and naming the reader by its label only, so the
two modules do not import each other.

A Referral is made when a visitor who came by a reader's referral link
becomes a reader (they pressed the button of their emailed signup link);
whether it pays off is decided once, when the referred reader's first
payment succeeds (subscriptions.actions.referrals), and every decision is a
ReferralDecision row with its reason, which staff read in the admin.
"""

from django.db import models


class ReferralPreference(models.Model):
    """What a referrer allows their link's page to say about them."""

    subscriber = models.OneToOneField(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="referral_preference"
    )
    # Off until the reader says so: the page is public, and a first name is theirs.
    show_first_name = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Referral preference of {self.subscriber}"


class Reason(models.TextChoices):
    """Why a referral earned a reward, or did not, or lost it."""

    FIRST_PAYMENT = "first_payment", "The referred reader's first payment succeeded"
    MILESTONE = "milestone", "A milestone of paying referrals was reached"
    SELF_ADDRESS = "self_address", "Self-referral: the same address once normalised"
    SAME_CUSTOMER = "same_customer", "Self-referral: the same Stripe customer"
    SAME_CARD = "same_card", "Self-referral: the same card (fingerprint)"
    HAD_TRIAL = "had_trial", "The referred address had a trial before the referral"
    CAP = "cap", "The referrer's yearly cap of free months is reached"
    NO_BILLING_ACCOUNT = "no_billing_account", "The referrer has no Stripe customer to credit"
    REFUNDED = "refunded", "The referred payment was refunded within the take-back window"
    DISPUTED = "disputed", "The referred payment was disputed within the take-back window"
    ALREADY_USED = "already_used", "Refunded or disputed, but the credit was already used"


class Referral(models.Model):
    """One reader brought by another: made at the referred reader's signup, once."""

    referrer = models.ForeignKey(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="referrals_made"
    )
    referred = models.OneToOneField(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="referral"
    )
    # False: the referral is recorded, but brings neither the longer trial nor
    # a reward (refused_reason says why: a self-referral, a trial before).
    eligible = models.BooleanField(default=True)
    refused_reason = models.CharField(max_length=40, choices=Reason, blank=True)
    trial_days = models.PositiveIntegerField(
        default=0, help_text="The trial the referral offered when it was made."
    )
    # The referred reader's first successful payment (never a trial's $0 invoice).
    first_paid_at = models.DateTimeField(null=True, blank=True)
    first_invoice_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="referral_created")]

    def __str__(self) -> str:
        return f"{self.referrer} referred {self.referred}"


class ReferralReward(models.Model):
    """Free months credited to a referrer's Stripe customer balance.

    The credit is written at Stripe after the decision commits
    (subscriptions.side_effects.credit_referral_reward, by this row's id and
    an idempotency key); taking it back writes the opposite amount.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Decided, to be credited at Stripe"
        CREDITED = "credited", "Credited to the customer balance"
        TAKEN_BACK = "taken_back", "Taken back"

    class Kind(models.TextChoices):
        REFERRAL = "referral", "A paying referral"
        MILESTONE = "milestone", "A milestone"

    referrer = models.ForeignKey(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="referral_rewards"
    )
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="rewards")
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.REFERRAL)
    months = models.PositiveIntegerField()
    amount = models.PositiveIntegerField(help_text="The credit, in cents.")
    currency = models.CharField(max_length=3, default="usd")
    stripe_customer_id = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    balance_transaction_id = models.CharField(max_length=255, blank=True)
    # The debit that took a credited reward back (written after the decision commits).
    take_back_transaction_id = models.CharField(max_length=255, blank=True)
    granted_at = models.DateTimeField()
    taken_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["referral", "kind"], name="referral_reward_once_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.months} free month(s) for {self.referrer} ({self.get_status_display()})"


class ReferralDecision(models.Model):
    """Every decision about a referral, with its reason: the record staff read."""

    class Outcome(models.TextChoices):
        TRIAL_OFFERED = "trial_offered", "Longer trial offered"
        REFUSED = "refused", "No reward"
        REWARDED = "rewarded", "Rewarded"
        TAKEN_BACK = "taken_back", "Reward taken back"
        KEPT = "kept", "Reward kept"

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="decisions")
    outcome = models.CharField(max_length=20, choices=Outcome)
    reason = models.CharField(max_length=40, choices=Reason, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.get_reason_display() or self.detail}"
