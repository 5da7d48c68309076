"""users/* routes: the one emulated account and its space usage."""

from __future__ import annotations

from dropbox import users, users_common

from dropbox_emulator.api import Call, route
from dropbox_emulator.namespaces import root_info
from dropbox_emulator.store import ACCOUNT_ID, Store

DISPLAY_NAME = "Emulator User"


@route("users/get_current_account")
def get_current_account(call: Call) -> users.FullAccount:
    # The token's account when the server names one in Dropbox's format, else the store's.
    account_id = call.account_id if len(call.account_id or "") == 40 else ACCOUNT_ID
    return users.FullAccount(
        account_id=account_id,
        name=users.Name(
            given_name="Emulator",
            surname="User",
            familiar_name="Emulator",
            display_name=DISPLAY_NAME,
            abbreviated_name="EU",
        ),
        email="emulator@example.com",
        email_verified=True,
        disabled=False,
        country="US",
        locale="en",
        referral_link="https://www.dropbox.com/referrals/emulator",
        is_paired=False,
        account_type=users_common.AccountType.business,
        root_info=root_info(),
    )


@route("users/get_space_usage")
def get_space_usage(call: Call) -> users.SpaceUsage:
    store: Store = call.store
    return users.SpaceUsage(
        used=store.used_bytes(),
        allocation=users.SpaceAllocation.individual(
            users.IndividualSpaceAllocation(allocated=store.config.quota_bytes)
        ),
    )
