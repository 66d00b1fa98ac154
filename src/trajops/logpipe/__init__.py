"""The log pipeline: prediction, audit and experiment rows from the API to the store.

One room for the path a log row takes: the API hands rows to a :class:`LogSink`
(:class:`~trajops.logpipe.pipe.PipeLogWriter` feeding a writer process, or the in-process
:class:`~trajops.logpipe.writer.LogWriter`); the writer inserts them in group-committed batches
(:mod:`trajops.logpipe.process` is the writer process's main); rows the store cannot take go
to the fsynced local spool (:mod:`trajops.logpipe.spool`) and are replayed idempotently.
"""

from trajops.logpipe.writer import LogSink, LogWriter, WriterConfig

__all__ = ["LogSink", "LogWriter", "WriterConfig"]
