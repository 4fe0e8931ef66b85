"""touchpoint-pipeline: customer touchpoints as Avro events on Kafka, stitched into journeys, analysed in ClickHouse.

`touchpoint` holds the small shared core (settings, errors, metrics registry) and the CLI;
the stages live in `touchpoint.producers`, `touchpoint.schemas`, `touchpoint.streams`, `touchpoint.sinks`.
"""

__version__ = "0.1.0"
