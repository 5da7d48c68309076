"""The one user account of an emulator run: every other module takes its identity from here."""

from __future__ import annotations

# Exactly 40 characters, like Dropbox's account ids; tokens carry it.
ACCOUNT_ID = "dbid:AAD6Xk3pQ9fLr2Tz8WmYc4Nv7Hs1Jb5Ug0E"
ACCOUNT_UID = "4242424242"  # the legacy numeric user id the token endpoint also returns

GIVEN_NAME = "Emulator"
SURNAME = "User"
DISPLAY_NAME = f"{GIVEN_NAME} {SURNAME}"
ABBREVIATED_NAME = "EU"
EMAIL = "emulator@example.com"
COUNTRY = "US"
LOCALE = "en"
REFERRAL_LINK = "https://www.dropbox.com/referrals/emulator"

# A team member in a team space, laid out as Dropbox's Namespace Guide describes: the team
# space root namespace contains the member's home namespace, mounted at `home_path`, and a team
# folder (a namespace of its own) next to it.
TEAM_NAMESPACE_ID = "3000000000"
HOME_NAMESPACE_ID = "3000000001"
TEAM_FOLDER_NAMESPACE_ID = "3000000002"
HOME_PATH = f"/{DISPLAY_NAME}"
TEAM_FOLDER_PATH = "/Team Folder"
