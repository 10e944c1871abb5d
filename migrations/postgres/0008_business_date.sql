-- The business date of each event (docs/events.md, "Business dates"): the trade
-- date its command's movements belong to, fixed when the command was decided.
-- NULL for events written before this column existed: readers date those by
-- the rule for a log without business dates. Hashed with the event when set.
ALTER TABLE events ADD COLUMN business_date DATE;
