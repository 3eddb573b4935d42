"""Apache Beam pipelines that turn MRI/CT volumes into TFRecord patch-pair shards (built on `pipeline`)."""
