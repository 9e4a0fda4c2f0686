#!/bin/sh
# The downward injection without any pod template: Spark's own label and
# annotation settings ask the webhook for the Downward-API files and variables,
# and the Kafka options read client.rack from /etc/topowire with Kafka's
# DirectoryConfigProvider (kafka-clients 2.7 or later; Spark 3.1+ ships 2.8+).
# The namespace must be labelled topowire.io/binding=enabled.
set -eu

: "${K8S_API:?set K8S_API to the API server URL, for example https://10.0.0.1:443}"
: "${SPARK_IMAGE:=apache/spark:3.5.1}"
: "${KAFKA_BOOTSTRAP:=b-1.orders.kafka.us-east-1.amazonaws.com:9098}"

# orders_stream.py (beside this script) sets the three kafka.* options.
exec spark-submit \
    --master "k8s://$K8S_API" \
    --deploy-mode cluster \
    --name orders-stream \
    --conf spark.kubernetes.namespace=spark \
    --conf spark.kubernetes.authenticate.driver.serviceAccountName=spark \
    --conf spark.kubernetes.container.image="$SPARK_IMAGE" \
    --conf spark.kubernetes.driver.label.topowire.io/inject=downward \
    --conf spark.kubernetes.executor.label.topowire.io/inject=downward \
    --conf spark.kubernetes.driver.annotation.topowire.io/rack=zone-id \
    --conf spark.kubernetes.executor.annotation.topowire.io/rack=zone-id \
    --conf spark.executor.instances=6 \
    --packages org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1 \
    local:///opt/app/orders_stream.py "$KAFKA_BOOTSTRAP" orders
