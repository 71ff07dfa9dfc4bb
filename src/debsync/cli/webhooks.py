"""debsync webhooks register: subscribe a receiver URL to a source's change events.

The source shows the signing secret once, in the answer to the registration. With
``--keyring SERVICE/NAME`` it goes into the OS keyring and the command prints the reference
to put in the instance's settings; without, it is printed once with the same instruction for
an environment variable. It never goes into ``connectors.toml`` in clear.
"""

from __future__ import annotations

from typing import Annotated

import typer

from debsync.cli.common import EXIT_FAILED, app, fail, load, now, open_store_or_exit, out
from debsync.errors import ConnectorError

webhooks_app = typer.Typer(help="Webhooks from bookkeeping sources.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command()
def register(
    ctx: typer.Context,
    instance: Annotated[str, typer.Argument(help="Connector instance (e.g. a Moneybird one).")],
    url: Annotated[str, typer.Argument(help="Where the source will POST its events (https).")],
    keyring_ref: Annotated[
        str | None,
        typer.Option(
            "--keyring",
            metavar="SERVICE/NAME",
            help="Store the signing secret in the OS keyring under this reference.",
        ),
    ] = None,
) -> None:
    """Subscribe URL to the instance's change events and keep the one-time signing secret."""
    import asyncio

    import keyring
    import keyring.errors

    from debsync.secrets import HEADLESS_ADVICE, keyring_available, split_keyring_reference
    from debsync.sync import build_connector

    _, config = load(ctx)
    configured = config.connectors.get(instance)
    if configured is None:
        fail(f"no connector instance {instance!r} in {config.path}")
    if "webhooks" not in configured.cls.capabilities:
        fail(f"connector type {configured.type_name!r} does not send webhooks")
    if not url.startswith("https://"):
        fail("the webhook URL must start with https:// (deliveries carry invoice data)")
    if keyring_ref is not None:
        service, name = split_keyring_reference(keyring_ref)
        if not keyring_available():
            fail(f"cannot use --keyring: {HEADLESS_ADVICE}")
    store = open_store_or_exit(config)
    try:
        connector = build_connector(configured, config, now, store)
        secret = asyncio.run(connector.register_webhook(url))
    except ConnectorError as exc:
        fail(f"registering the webhook failed: {exc}", EXIT_FAILED)
    finally:
        store.dispose()
    out.print(f"Registered {url} for {instance}.", highlight=False)
    if keyring_ref is not None:
        try:
            keyring.set_password(service, name, secret)
        except keyring.errors.KeyringError as exc:
            fail(f"storing the secret in the keyring failed ({exc}); register again", EXIT_FAILED)
        reference = f'{{ keyring = "{keyring_ref}" }}'
        out.print("The signing secret is in the keyring. In [connectors." + instance + "] write:")
    else:
        variable = f"DEBSYNC_{instance.upper().replace('-', '_')}_WEBHOOK_SECRET"
        reference = f'{{ env = "{variable}" }}'
        out.print(
            "Signing secret (shown once; set it in the daemon's environment as "
            f"{variable}):\n{secret}\nIn [connectors.{instance}] write:",
            highlight=False,
        )
    out.print(f"webhook_secret = {reference}", highlight=False, markup=False)
