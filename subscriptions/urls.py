from django.urls import path

from subscriptions import billing_views, referral_views, team_views, views

app_name = "subscriptions"

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/continue/", views.signup_continue, name="signup-continue"),
    path("subscribe/continue/<str:token>/", views.signup_continue_link, name="signup-link"),
    path("subscribe/success/", views.checkout_success, name="checkout-success"),
    path("signin/", views.sign_in_request, name="sign-in"),
    path("signin/confirm/", views.sign_in_confirm, name="sign-in-confirm"),
    path("signin/<str:token>/", views.sign_in_link, name="sign-in-link"),
    path("signout/", views.sign_out_view, name="sign-out"),
    path("account/sign-out-everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
    path("account/", views.account, name="account"),
    path("account/checkout/", views.account_checkout, name="account-checkout"),
    path("account/billing/", views.account_billing, name="account-billing"),
    path("account/email/", views.account_email, name="account-email"),
    path("account/preferences/", views.account_preferences, name="account-preferences"),
    path("account/address/", views.account_address, name="account-address"),
    path("account/address/confirm/", views.email_change_confirm, name="email-change-confirm"),
    path("account/address/<str:token>/", views.email_change_link, name="email-change-link"),
    path("account/data/", views.account_data, name="account-data"),
    path("account/data/export/", views.account_data_export, name="account-data-export"),
    path("account/data/delete/", views.account_data_delete, name="account-data-delete"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    # The billing lifecycle (subscriptions.billing_views).
    path("account/renewal/", billing_views.account_renewal, name="account-renewal"),
    path("account/pause-billing/", billing_views.account_pause, name="account-pause-billing"),
    path("billing/renewal/", billing_views.renewal, name="billing-renewal-page"),
    path("billing/renewal/<str:token>/", billing_views.renewal_link, name="billing-renewal"),
    path("billing/rejoin/<str:token>/", billing_views.rejoin, name="billing-rejoin"),
    # Referrals (subscriptions.referral_views).
    path("invite/<str:token>/", referral_views.landing, name="referral-landing"),
    path("account/referrals/", referral_views.account_referrals, name="account-referrals"),
    # Teams (subscriptions.team_views).
    path("teams/", team_views.buy, name="teams"),
    path("teams/manage/<str:token>/", team_views.manage_link, name="team-manage"),
    path("teams/<int:team_id>/", team_views.manage, name="team-page"),
    path("teams/join/<str:token>/", team_views.join, name="team-join"),
    path("teams/seat/", team_views.seat, name="team-seat"),
    path("teams/seat/<str:token>/", team_views.seat_link, name="team-seat-link"),
    path("gift/", billing_views.gift, name="gift"),
    path("gift/thanks/", billing_views.gift_thanks, name="gift-thanks"),
    path("gift/redeem/", billing_views.gift_redeem, name="gift-redeem"),
    path("gift/redeem/<str:token>/", billing_views.gift_redeem_link, name="gift-redeem-link"),
]
