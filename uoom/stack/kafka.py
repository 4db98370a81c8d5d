"""Apache Kafka in KRaft single-node mode, from the broker jars on Maven Central."""

from __future__ import annotations

import logging
import shutil
import subprocess
import uuid
from importlib import resources
from pathlib import Path

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition

from uoom.errors import PrerequisiteMissing
from uoom.stack.base import Held, LocalService, plural, require_program

JAVA_FIX = "install Java 17: apt-get install -y openjdk-17-jre-headless (or run scripts/setup)"
MVN_FIX = "install Maven: apt-get install -y maven (or run scripts/setup)"
LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""


class Kafka(LocalService):
    name = "kafka"
    start_timeout = 90.0  # a cold JVM on two busy cores

    @property
    def _first(self) -> tuple[str, int]:
        host, _, port = self.settings.kafka_bootstrap.split(",")[0].rpartition(":")
        return host, int(port)

    @property
    def url(self) -> str:
        return self.settings.kafka_bootstrap

    @property
    def host(self) -> str:
        return self._first[0]

    @property
    def port(self) -> int:
        return self._first[1]

    @property
    def libs(self) -> Path:
        # Shared by every stack home of this user: the jars are fetched once.
        return Path.home() / ".cache" / "uoom" / f"kafka-{self.kafka_version}"

    @property
    def kafka_version(self) -> str:
        pom = resources.files("uoom.stack").joinpath("kafka-pom.xml").read_text()
        return pom.split("<kafka.version>")[1].split("</kafka.version>")[0]

    def check_prerequisites(self) -> None:
        require_program("java", JAVA_FIX)
        if not self._jars_present():
            require_program("mvn", MVN_FIX)

    def start_step(self) -> str:
        if self._jars_present():
            return "starting (a cold JVM: up to a minute)"
        return f"fetching the Kafka {self.kafka_version} jars with Maven (first start only: a few minutes)"

    def _jars_present(self) -> bool:
        return (self.libs / f"kafka_2.13-{self.kafka_version}.jar").exists()

    def fetch_jars(self) -> None:
        if self._jars_present():
            return
        mvn = require_program("mvn", MVN_FIX)
        staging = self.libs.with_name(self.libs.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        pom = resources.files("uoom.stack").joinpath("kafka-pom.xml")
        with resources.as_file(pom) as pom_path:
            result = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom_path),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
            )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise PrerequisiteMissing("fetching the Kafka jars with mvn failed: " + " | ".join(tail))
        staging.rename(self.libs)  # atomic: a half-fetched folder is never taken for a whole one

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            require_program("java", JAVA_FIX),
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def prepare(self) -> None:
        self.fetch_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j.properties").write_text(LOG4J)
        props = self.data_dir / "server.properties"
        props.write_text(self._properties())
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cluster_id = (
            subprocess.run(
                self._java("kafka.tools.StorageTool", "random-uuid"),
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            or uuid.uuid4().hex
        )
        subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
            capture_output=True,
            check=True,
        )

    def _properties(self) -> str:
        controller_port = self.port + 1
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": str(self.settings.kafka_partitions),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        return "".join(f"{k}={v}\n" for k, v in lines.items())

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.data_dir / "server.properties"))

    async def probe(self) -> str:
        # A refused connection is the expected answer while the broker starts: no log noise.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        client = AIOKafkaClient(bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=3000)
        try:
            await client.bootstrap()
            if not client.cluster.brokers():
                raise ConnectionError("no broker in metadata")
        finally:
            await client.close()
        version = self.kafka_version if self.pid() else "?"
        return f"Kafka {version} (KRaft)"

    async def holds(self) -> Held | None:
        client = AIOKafkaClient(bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=5000)
        await client.bootstrap()
        try:
            cluster = await client.fetch_all_metadata()
        finally:
            await client.close()
        topics = sorted(t for t in cluster.topics() if not t.startswith("__"))  # "__...": Kafka's own
        partitions = [TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()]
        if not partitions:
            return None
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=5000)
        await consumer.start()
        try:
            first = await consumer.beginning_offsets(partitions)
            last = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        messages = sum(last[p] - first[p] for p in partitions)
        if not messages:
            return None
        where = f"on disk in {self.data_dir / 'logs'}"
        return Held(f"{plural(messages, 'message')} in {plural(len(topics), 'topic')} ({where})", lost=False)
