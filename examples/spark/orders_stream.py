"""Read a Kafka topic with each executor fetching from a replica in its own zone.

The three kafka.* options below are the whole recipe: Spark passes every
option that starts with "kafka." to the Kafka clients it builds (on the driver
and in each executor), and Kafka's FileConfigProvider replaces the ${file:...}
reference with client.rack from the file topowire-init wrote in that pod.
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
    .option("kafka.config.providers", "file")
    .option(
        "kafka.config.providers.file.class",
        "org.apache.kafka.common.config.provider.FileConfigProvider",
    )
    .option("kafka.client.rack", "${file:/etc/topowire/rack.properties:client.rack}")
    .load()
)

query = orders.writeStream.format("console").start()
query.awaitTermination()
