"""Apache Beam pipelines that turn MRI/CT volumes into TFRecord patch-pair shards (built on `pipeline`)."""
import logging

BIGQUERY_NOTICE = "apitools not found, and bigquery client libraries are not available"


def _without_bigquery_notice(record: logging.LogRecord) -> bool:
    """Beam's import warns on the root logger that its BigQuery clients are missing; no soupgan job uses them, and
    the notice would come before a bad input's one-line error."""
    return not record.getMessage().startswith(BIGQUERY_NOTICE)


logging.getLogger().addFilter(_without_bigquery_notice)
