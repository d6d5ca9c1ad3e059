"""AWS Secrets Manager as a :class:`~claudesec.stores.interface.KeyStore` (boto3).

Credentials come from the standard AWS chain; region and endpoint from ``[keys]``. Every
botocore failure becomes a claudesec error with one clear line: a missing secret is a usage
error (exit 2), anything the service or the network did is exit 3.

Reads always name a stage or a version: a bare ``GetSecretValue`` can return a stale
version on some emulators (moto), and naming it is what the rotation means anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from claudesec.errors import ConfigError, StoreError
from claudesec.redact import scrub
from claudesec.stores.interface import (
    CURRENT,
    SecretExists,
    SecretNotFound,
    SecretState,
    SecretValue,
    StageConflict,
)

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from claudesec.config import KeysConfig

_CREDENTIAL_CODES = frozenset(
    {
        "ExpiredTokenException",
        "ExpiredToken",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AccessDeniedException",
        "AccessDenied",
    }
)


class SecretsManagerStore:
    """Managed keys and the pool as Secrets Manager secrets."""

    kind = "secretsmanager"

    def __init__(self, client: SecretsManagerClient, *, where: str = "") -> None:
        self.client = client
        self.where = where or "AWS Secrets Manager"

    @classmethod
    def from_config(cls, keys: KeysConfig) -> SecretsManagerStore:
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "config": Config(
                retries={"mode": "standard", "total_max_attempts": max(1, keys.aws_max_attempts)},
                connect_timeout=keys.aws_timeout_s,
                read_timeout=keys.aws_timeout_s,
            )
        }
        if keys.aws_region:
            options["region_name"] = keys.aws_region
        if keys.aws_endpoint_url:
            options["endpoint_url"] = keys.aws_endpoint_url
        session = boto3.session.Session()
        try:
            client = session.client("secretsmanager", **options)
        except Exception as exc:
            from botocore.exceptions import NoRegionError

            if isinstance(exc, NoRegionError):
                raise ConfigError(
                    "no AWS region configured",
                    hint="set keys.aws_region or AWS_DEFAULT_REGION",
                ) from None
            raise
        # The region always: a wrong one is the likeliest reason a secret is "not found".
        where = f"Secrets Manager in {client.meta.region_name}"
        if keys.aws_endpoint_url:
            where += f" at {keys.aws_endpoint_url}"
        return cls(client, where=where)

    # ----------------------------------------------------------------- KeyStore

    def list_secrets(self, prefix: str) -> list[SecretState]:
        found: list[SecretState] = []
        with self._errors("list secrets"):
            paginator = self.client.get_paginator("list_secrets")
            pages = paginator.paginate(
                Filters=[{"Key": "name", "Values": [prefix]}] if prefix else [],
                IncludePlannedDeletion=False,
            )
            for page in pages:
                for entry in page.get("SecretList", []):
                    name = entry.get("Name", "")
                    if not name.startswith(prefix):
                        continue  # the service's name filter matches more than a prefix
                    found.append(
                        SecretState(
                            name=name,
                            versions={
                                k: tuple(v)
                                for k, v in entry.get("SecretVersionsToStages", {}).items()
                            },
                            tags={t["Key"]: t["Value"] for t in entry.get("Tags", [])},
                        )
                    )
        return sorted(found, key=lambda s: s.name)

    def describe(self, name: str) -> SecretState:
        with self._errors(f"describe {name}", name=name):
            data = self.client.describe_secret(SecretId=name)
        return SecretState(
            name=data.get("Name", name),
            versions={k: tuple(v) for k, v in data.get("VersionIdsToStages", {}).items()},
            tags={t["Key"]: t["Value"] for t in data.get("Tags", [])},
        )

    def read(
        self, name: str, *, stage: str = CURRENT, version_id: str | None = None
    ) -> SecretValue:
        with self._errors(f"read {name}", name=name):
            if version_id is not None:
                data = self.client.get_secret_value(SecretId=name, VersionId=version_id)
            else:
                data = self.client.get_secret_value(SecretId=name, VersionStage=stage)
        return SecretValue(version_id=data["VersionId"], text=data.get("SecretString", ""))

    def create(self, name: str, text: str, *, tags: Mapping[str, str], token: str) -> str:
        with self._errors(f"create {name}", name=name, secrets=(text,)):
            data = self.client.create_secret(
                Name=name,
                SecretString=text,
                ClientRequestToken=token,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        return data["VersionId"]

    def put_version(self, name: str, text: str, *, token: str, stages: Sequence[str]) -> None:
        with self._errors(f"write {name}", name=name, secrets=(text,)):
            self.client.put_secret_value(
                SecretId=name, SecretString=text, ClientRequestToken=token, VersionStages=stages
            )

    def move_stage(
        self, name: str, stage: str, *, to_version: str | None, from_version: str | None
    ) -> None:
        args: dict[str, Any] = {"SecretId": name, "VersionStage": stage}
        if to_version is not None:
            args["MoveToVersionId"] = to_version
        if from_version is not None:
            args["RemoveFromVersionId"] = from_version
        with self._errors(f"move {stage} of {name}", name=name, conflict=True):
            self.client.update_secret_version_stage(**args)

    def set_tags(self, name: str, tags: Mapping[str, str]) -> None:
        with self._errors(f"tag {name}", name=name):
            self.client.tag_resource(
                SecretId=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )

    # ----------------------------------------------------------------- resource policies

    def get_policy(self, name: str) -> str | None:
        with self._errors(f"read the resource policy of {name}", name=name):
            data = self.client.get_resource_policy(SecretId=name)
        return data.get("ResourcePolicy") or None

    def put_policy(self, name: str, policy: str) -> None:
        with self._errors(f"apply the resource policy of {name}", name=name):
            self.client.put_resource_policy(
                SecretId=name, ResourcePolicy=policy, BlockPublicPolicy=True
            )

    # ----------------------------------------------------------------- errors

    @contextmanager
    def _errors(
        self,
        action: str,
        *,
        name: str = "",
        secrets: Sequence[str] = (),
        conflict: bool = False,
    ) -> Iterator[None]:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            ParamValidationError,
        )

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = scrub(str(error.get("Message", "")), secrets)
            if code == "ResourceNotFoundException":
                raise SecretNotFound(
                    f"secret {name} not found in {self.where}",
                    hint="check the name and keys.secret_prefix, or add it with `keys add`",
                ) from None
            if code == "ResourceExistsException":
                raise SecretExists(f"secret {name} already exists in {self.where}") from None
            if conflict and code in ("InvalidParameterException", "InvalidRequestException"):
                raise StageConflict(f"{action}: {message}") from None
            hint = "rerun to resume"
            if code in _CREDENTIAL_CODES:
                hint = "refresh the AWS credentials (aws sso login, or the role's session)"
            raise StoreError(
                f"AWS Secrets Manager could not {action}: {code}: {message}", hint=hint
            ) from None
        except EndpointConnectionError:
            raise StoreError(
                f"AWS Secrets Manager unreachable at {self.where} (could not {action})",
                hint="check keys.aws_endpoint_url, keys.aws_region and the network",
            ) from None
        except NoCredentialsError:
            raise StoreError(
                f"no AWS credentials to {action}",
                hint="configure the AWS credential chain (env, profile, SSO or instance role)",
            ) from None
        except ParamValidationError as exc:
            raise StoreError(
                f"AWS Secrets Manager rejected the request to {action}: " + scrub(str(exc), secrets)
            ) from None
        except BotoCoreError as exc:
            raise StoreError(
                f"AWS Secrets Manager failed to {action}: {scrub(str(exc), secrets)}",
                hint="check the network and rerun to resume",
            ) from None
