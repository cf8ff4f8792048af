"""Validates metadata.yaml against Airbyte's official ConnectorMetadataDefinitionV0 model
(airbyte-connector-models), plus the points each destination promises: its repository (an argument), and
the hosts it may reach."""

import sys
import uuid

import yaml
from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import (
    ConnectorMetadataDefinitionV0,
)


def main(path: str, repository: str) -> int:
    raw = yaml.safe_load(open(path))
    metadata = ConnectorMetadataDefinitionV0.model_validate(raw)
    data = metadata.data
    uuid.UUID(str(data.definition_id))
    checks = {
        "connectorType is destination": data.connector_type.value == "destination",
        "connectorSubtype is api": data.connector_subtype.value == "api",
        "supportsDataActivation": data.supports_data_activation is True,
        "allowedHosts names the API's hosts": data.allowed_hosts is not None
        and bool(data.allowed_hosts.hosts)
        and all(h and " " not in h and "/" not in h for h in data.allowed_hosts.hosts),
        "dockerRepository": data.docker_repository == repository,
        "icon, with icon.svg beside metadata.yaml": bool(data.icon)
        and __import__("pathlib").Path(path).with_name("icon.svg").is_file(),
        "externalDocumentationUrls": bool(data.external_documentation_urls),
        "a language tag": any(str(t).startswith("language:") for t in data.tags or []),
    }
    failed = [name for name, ok in checks.items() if not ok]
    for name in failed:
        print("metadata.yaml: FAILED", name)
    if failed:
        return 1
    print(f"metadata.yaml is a valid ConnectorMetadataDefinitionV0: {data.name} {data.docker_image_tag}")
    return 0


if __name__ == "__main__":
    # validate_metadata.py METADATA REPOSITORY
    sys.exit(main(sys.argv[1], sys.argv[2]))
