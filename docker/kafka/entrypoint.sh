#!/bin/bash
# Formats the node's storage on first start (a restarted container keeps its data), then
# execs the broker so that `docker kill` hits the JVM itself.
set -euo pipefail
conf=/var/lib/kafka/server.properties
log4j="-Dlog4j2.configurationFile=/opt/kafka/log4j2.yaml"
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  java $log4j -cp "/opt/kafka/libs/*" kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" -c "$conf" \
       --feature "transaction.version=$KAFKA_TRANSACTION_VERSION"
fi
exec java "-Xms${KAFKA_HEAP_MB}m" "-Xmx${KAFKA_HEAP_MB}m" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
     -Djava.awt.headless=true $log4j -cp "/opt/kafka/libs/*" kafka.Kafka "$conf"
