"""The log pipeline: prediction, audit and experiment rows from the API to the store.

One room for the path a log row takes: the API hands rows to a :class:`LogSink`
(:class:`~trajops.logpipe.durable.DurableLogWriter`: the process's write-ahead log, durable
before the 2xx, see :mod:`trajops.logpipe.wal`); a consumer (:mod:`trajops.logpipe.tail`, in
the writer process :mod:`trajops.logpipe.process` or a thread) inserts them through a
:class:`~trajops.logpipe.writer.LogWriter` in group-committed batches; rows the store cannot
take go to the fsynced local spool (:mod:`trajops.logpipe.spool`) and are replayed
idempotently.
"""

from trajops.logpipe.writer import LogSink, LogWriter, WriterConfig

__all__ = ["LogSink", "LogWriter", "WriterConfig"]
