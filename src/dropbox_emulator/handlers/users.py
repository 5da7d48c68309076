"""users/* routes: the one emulated account and its space usage."""

from __future__ import annotations

from dropbox import users, users_common

from dropbox_emulator.handlers.contract import Call, Services, route
from dropbox_emulator.state import account
from dropbox_emulator.state.metadata import void
from dropbox_emulator.state.namespaces import root_info


@route("users/get_current_account")
def get_current_account(call: Call, services: Services) -> users.FullAccount:
    # The token's account when it names one in Dropbox's format, else the emulated one.
    account_id = call.account_id if len(call.account_id or "") == 40 else account.ACCOUNT_ID
    return users.FullAccount(
        account_id=account_id,
        name=users.Name(
            given_name=account.GIVEN_NAME,
            surname=account.SURNAME,
            familiar_name=account.GIVEN_NAME,
            display_name=account.DISPLAY_NAME,
            abbreviated_name=account.ABBREVIATED_NAME,
        ),
        email=account.EMAIL,
        email_verified=True,
        disabled=False,
        country=account.COUNTRY,
        locale=account.LOCALE,
        referral_link=account.REFERRAL_LINK,
        is_paired=False,
        account_type=void(users_common.AccountType, "business"),
        root_info=root_info(),
    )


@route("users/get_space_usage")
def get_space_usage(call: Call, services: Services) -> users.SpaceUsage:
    store = services.store
    return users.SpaceUsage(
        used=store.tree.used_bytes(),
        allocation=users.SpaceAllocation.individual(
            users.IndividualSpaceAllocation(allocated=store.config.quota_bytes)
        ),
    )
