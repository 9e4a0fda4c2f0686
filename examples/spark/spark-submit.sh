#!/bin/sh
# Submit a Structured Streaming job whose driver and executors each get their
# node's zone as Kafka client.rack. Run from this directory (spark-submit reads
# both pod templates at submission and hands the executor one to the driver).
#
# Prerequisites: a namespace "spark" with a service account "spark" that may
# manage executor pods, and, unless the binding webhook is enabled there, the
# topowire-init ClusterRole bound to it (manifests/init-only).
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
    --conf spark.kubernetes.driver.podTemplateFile=driver-pod-template.yaml \
    --conf spark.kubernetes.driver.podTemplateContainerName=spark-kubernetes-driver \
    --conf spark.kubernetes.executor.podTemplateFile=executor-pod-template.yaml \
    --conf spark.kubernetes.executor.podTemplateContainerName=spark-kubernetes-executor \
    --conf spark.executor.instances=6 \
    --packages org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1 \
    local:///opt/app/orders_stream.py "$KAFKA_BOOTSTRAP" orders
