-- No query reads events by command id: a command's outcome names its first and
-- last position, and its events are the contiguous run between them. The index
-- cost every append a B-tree insert at a scattered key (command ids are
-- the callers'), which docs/performance.md measures ("One lookup a batch, one index fewer").
DROP INDEX events_by_command;
