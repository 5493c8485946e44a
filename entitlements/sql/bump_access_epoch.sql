-- entitlements.bump_access_epoch: a change to a row the access rule reads moves the access epoch, so claim-next
-- stops using every remembered answer (entitlements.work_access_for) once the change commits. Every change bumps,
-- even several in one transaction: an answer computed between two of them must not outlive the second.
--
-- Hand-written, not django-pgtrigger: these are cache invalidation, not policy; one function serves the tables of
-- two apps, and pgtrigger's triggers can be skipped by any session that sets pgtrigger.ignore.
CREATE OR REPLACE FUNCTION entitlements.bump_access_epoch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE entitlements.access_epoch SET epoch = epoch + 1;
    RETURN NULL;
END
$$;
