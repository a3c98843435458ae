"""Where and how the daemon's log goes: plain text, the systemd journal, or JSON lines.

``speaker run --log-format text`` writes timestamped lines to stderr; when stderr *is* the
journal (``JOURNAL_STREAM`` names stderr's device and inode, systemd.exec(5)) the journal
stamps each line itself, so the timestamp is dropped and each line starts with its syslog
priority ``<N>`` (sd-daemon(3)), which journald turns into the entry's priority.
``--log-format json`` writes one JSON object per line: events through
:class:`speaker.sinks.JsonSink` (their own ``to_dict()``), other log records as
time/level/logger/message.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum, IntEnum, StrEnum
from typing import TextIO

from speaker.events import Subscriber
from speaker.sinks import JsonSink, LogSink

__all__ = ["LogFormat", "LogStyle", "SyslogPriority", "choose_style", "configure_logging",
           "event_log", "stderr_is_journal"]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"


class LogFormat(StrEnum):
    """What ``--log-format`` accepts."""

    TEXT = "text"
    JSON = "json"


class LogStyle(Enum):
    """What is actually written: text on a terminal or file, text for the journal, or JSON."""

    TEXT = "text"
    JOURNAL = "journal"
    JSON = "json"


class SyslogPriority(IntEnum):
    """syslog(3) priorities, the ``<N>`` prefix of sd-daemon(3)."""

    CRIT = 2
    ERR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7

    @classmethod
    def of(cls, levelno: int) -> SyslogPriority:
        """The priority of a :mod:`logging` level."""
        if levelno >= logging.CRITICAL:
            return cls.CRIT
        if levelno >= logging.ERROR:
            return cls.ERR
        if levelno >= logging.WARNING:
            return cls.WARNING
        if levelno >= logging.INFO:
            return cls.INFO
        return cls.DEBUG


def stderr_is_journal(journal_stream: str | None, stderr: os.stat_result | None) -> bool:
    """True when ``JOURNAL_STREAM`` (``"DEV:INODE"``) is the file stderr is (systemd.exec(5))."""
    if not journal_stream or stderr is None:
        return False
    dev, sep, ino = journal_stream.partition(":")
    if not sep or not dev.isdigit() or not ino.isdigit():
        return False
    return (int(dev), int(ino)) == (stderr.st_dev, stderr.st_ino)


def choose_style(fmt: LogFormat, journal_stream: str | None,
                 stderr: os.stat_result | None) -> LogStyle:
    """The log style for ``--log-format fmt`` given ``JOURNAL_STREAM`` and stderr's fstat."""
    if fmt is LogFormat.JSON:
        return LogStyle.JSON
    return LogStyle.JOURNAL if stderr_is_journal(journal_stream, stderr) else LogStyle.TEXT


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``; no timestamp, journald adds its own."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{int(SyslogPriority.of(record.levelno))}>"
        # every line of a multi-line message (a traceback) keeps the priority
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class JsonFormatter(logging.Formatter):
    """Log records that are not events (library warnings, errors) as one JSON object each."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": round(record.created, 6), "level": record.levelname.lower(),
               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, separators=(",", ":"))


def _stderr_stat() -> os.stat_result | None:
    try:
        return os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return None  # stderr closed or replaced by an object without a descriptor


def configure_logging(level: str, fmt: LogFormat = LogFormat.TEXT) -> LogStyle:
    """Set up the root logger on stderr in the chosen style; returns the style."""
    style = choose_style(fmt, os.environ.get("JOURNAL_STREAM"), _stderr_stat())
    formatter: logging.Formatter
    if style is LogStyle.JSON:
        formatter = JsonFormatter()
    elif style is LogStyle.JOURNAL:
        formatter = JournalFormatter()
    else:
        formatter = logging.Formatter(TEXT_FORMAT)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    return style


def event_log(style: LogStyle, level: str, out: TextIO | None = None) -> Subscriber:
    """The bus subscriber that logs events: JSON objects (the events' own ``to_dict``) in the
    JSON style, else :class:`LogSink` through the formatter above."""
    if style is LogStyle.JSON:
        return JsonSink(out or sys.stderr, min_level=getattr(logging, level.upper(),
                                                             logging.INFO))
    return LogSink()


