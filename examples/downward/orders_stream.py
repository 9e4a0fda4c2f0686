"""Read a Kafka topic with each executor fetching from a replica in its own zone, no init container.

The three kafka.* options below are the whole recipe: Spark passes every
option that starts with "kafka." to the Kafka clients it builds (on the driver
and in each executor), and Kafka's DirectoryConfigProvider (kafka-clients 2.7+)
replaces the ${dir:...} reference with the bytes of /etc/topowire/client.rack,
the Downward-API file the kubelet filled from the pod's binding annotations.
When the file is empty (the binding webhook did not see the pod) client.rack is
unset and the consumer fetches from the partition leaders, as without topowire.
"""
import sys

from pyspark.sql import SparkSession

bootstrap, topic = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("orders-stream").getOrCreate()

orders = (
    spark.readStream.format("kafka")
    .option("kafka.bootstrap.servers", bootstrap)
    .option("subscribe", topic)
    # Provider aliases in lower case: Spark lower-cases option names, so the
    # alias in "config.providers.<alias>.class" must already be lower case.
    .option("kafka.config.providers", "dir")
    .option(
        "kafka.config.providers.dir.class",
        "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
    )
    .option("kafka.client.rack", "${dir:/etc/topowire:client.rack}")
    .load()
)

query = orders.writeStream.format("console").start()
query.awaitTermination()
