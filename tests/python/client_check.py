"""Drives the official Tecton HTTP client (tecton-client 0.4.0, unmodified) against a mock.

Usage: client_check.py <base_url>

Reads the `fraud_detection` service of the `prod` workspace for user `u1`, then its metadata,
then provokes one 404 (unknown feature service) and one 401 (bad API key). Prints a single
JSON object on stdout for tests/python_client.rs to assert on:

    {
      "client_version": "0.4.0",
      "features": {<name>: <value>, ...},      # GetFeaturesResponse.get_features_dict()
      "feature_names": [<name>, ...],          # get-features metadata order
      "statuses": {<name>: <status>, ...},     # metadata.features[].status
      "slo_eligible": true,
      "metadata_features": [<name>, ...],      # get_feature_service_metadata().feature_values
      "metadata_join_keys": [<name>, ...],
      "errors": {"not_found": {...}, "unauthorized": {...}}  # class, status, message
    }

Anything unexpected (an error that should not happen, a typed error that does not come, a
wrong exception class) ends the script with a traceback and a non-zero exit code, so the
Rust test shows the client's own words.
"""

import json
import sys

from tecton_client import MetadataOptions, TectonClient
from tecton_client.__about__ import __version__ as CLIENT_VERSION
from tecton_client.exceptions import NotFoundError, TectonHttpException, UnauthorizedError

WORKSPACE = "prod"
SERVICE = "fraud_detection"
CONSUMER_KEY = "demo-consumer-key"


def expect_error(expected, call):
    """Runs `call`, which must raise exactly `expected`; returns what the test checks."""
    try:
        call()
    except TectonHttpException as exc:
        # Exact class, not a subclass check: the point is which typed error the client picks.
        if type(exc) is not expected:
            raise AssertionError(f"expected {expected.__name__}, got {type(exc).__name__}") from exc
        return {
            "class": type(exc).__name__,
            # The client never sets the instance's status_code; STATUS_CODE is the class's.
            "status": type(exc).STATUS_CODE,
            "message": exc.message,
        }
    raise AssertionError(f"expected {expected.__name__}, but the call succeeded")


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} <base_url>", file=sys.stderr)
        return 2
    url = argv[1]

    client = TectonClient(url=url, api_key=CONSUMER_KEY, default_workspace_name=WORKSPACE)
    # All metadata options: names and data types are what get_features_dict() needs; the rest
    # exercise the client's sloInfo parsing and the mock's ignoring of options it lacks.
    response = client.get_features(
        feature_service_name=SERVICE,
        join_key_map={"user_id": "u1"},
        metadata_options=MetadataOptions.all(),
    )
    features = response.get_features_dict()
    statuses = {f["name"]: f.get("status") for f in response.metadata["features"]}
    if response.slo_info is None:
        raise AssertionError("include_slo_info was requested but the response has no sloInfo")

    metadata = client.get_feature_service_metadata(feature_service_name=SERVICE)

    not_found = expect_error(
        NotFoundError,
        lambda: client.get_features(
            feature_service_name="no_such_service", join_key_map={"user_id": "u1"}
        ),
    )
    bad_key = TectonClient(url=url, api_key="not-a-real-key", default_workspace_name=WORKSPACE)
    unauthorized = expect_error(
        UnauthorizedError,
        lambda: bad_key.get_features(feature_service_name=SERVICE, join_key_map={"user_id": "u1"}),
    )

    out = {
        "client_version": CLIENT_VERSION,
        "features": features,
        "feature_names": [f["name"] for f in response.metadata["features"]],
        "statuses": statuses,
        "slo_eligible": response.slo_info.slo_eligible,
        "metadata_features": [f["name"] for f in metadata.feature_values],
        "metadata_join_keys": [k["name"] for k in (metadata.input_join_keys or [])],
        "errors": {"not_found": not_found, "unauthorized": unauthorized},
    }
    # allow_nan=False: a NaN/Infinity would make invalid JSON; fail here instead.
    json.dump(out, sys.stdout, allow_nan=False, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
