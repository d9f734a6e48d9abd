/* SPDX-License-Identifier: MIT */
/*
 * kafka_mock.c - a local Kafka for bench/bridge_bench.sh: librdkafka's mock
 * cluster (BROKERS brokers on localhost), topic TOPIC with one partition;
 * prints the bootstrap address, then serves until stdin closes.
 *   cc bench/kafka_mock.c -lrdkafka -o kafka_mock && ./kafka_mock TOPIC [BROKERS]
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char err[256], buf[64];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	int brokers = argc > 2 ? atoi(argv[2]) : 1;

	if (argc < 2) {
		fprintf(stderr, "usage: kafka_mock TOPIC [BROKERS]\n");
		return 2;
	}
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk || !(mc = rd_kafka_mock_cluster_new(rk, brokers)) ||
	    rd_kafka_mock_topic_create(mc, argv[1], 1, brokers)) {
		fprintf(stderr, "kafka_mock: cannot start: %s\n", err);
		return 1;
	}
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
