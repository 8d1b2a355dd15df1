-- Server lists are pages in (created_at, id) order, newest first, within a
-- project or across all of them: read in index order, a page stops after
-- its last row instead of sorting every server.
CREATE INDEX servers_project_page ON servers (project_id, created_at, id);
CREATE INDEX servers_page ON servers (created_at, id);
