"""Running the service: backups and restore (operations/backups.py).

Not the product: it knows the database, its migrations and MEDIA_ROOT only
through Django, never the apps' models, so a backup holds whatever the apps
keep, and a restore puts it back whole.
"""
