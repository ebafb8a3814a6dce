#!/bin/bash
# Run a Kafka class with the image's jars and logging, as upstream's script of the same name.
# shellcheck disable=SC2086  # the *_OPTS variables are lists of JVM options, as upstream
exec java ${KAFKA_HEAP_OPTS:-} ${KAFKA_OPTS:-} \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml -cp '/opt/kafka/libs/*' "$@"
