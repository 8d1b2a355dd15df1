-- The address a host's VXLAN tunnels start and end at (its underlay
-- address), or none for the host's own address (host_ip).
ALTER TABLE hosts ADD COLUMN tunnel_ip TEXT
