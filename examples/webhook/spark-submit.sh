#!/bin/sh
# With the topowire webhook installed, no pod template is needed: Spark's own
# label and annotation settings opt the driver and the executors in. The Kafka
# options in the application are the same as without the webhook
# (../spark/orders_stream.py).
set -eu

: "${K8S_API:?set K8S_API to the API server URL, for example https://10.0.0.1:443}"
: "${SPARK_IMAGE:=apache/spark:3.5.1}"
: "${KAFKA_BOOTSTRAP:=b-1.orders.kafka.us-east-1.amazonaws.com:9098}"

exec spark-submit \
    --master "k8s://$K8S_API" \
    --deploy-mode cluster \
    --name orders-stream \
    --conf spark.kubernetes.namespace=spark \
    --conf spark.kubernetes.authenticate.driver.serviceAccountName=spark \
    --conf spark.kubernetes.container.image="$SPARK_IMAGE" \
    --conf spark.kubernetes.driver.label.topowire.io/inject=true \
    --conf spark.kubernetes.executor.label.topowire.io/inject=true \
    --conf spark.kubernetes.driver.annotation.topowire.io/rack=zone-id \
    --conf spark.kubernetes.executor.annotation.topowire.io/rack=zone-id \
    --conf spark.executor.instances=6 \
    --packages org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1 \
    local:///opt/app/orders_stream.py "$KAFKA_BOOTSTRAP" orders
