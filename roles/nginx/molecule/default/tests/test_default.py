"""The nginx role: TLS, HTTP -> HTTPS, static assets, security headers, maintenance switch."""

testinfra_hosts = ["ansible://all"]


def curl(host, *args):
    return host.check_output("curl -sk -o /dev/null -D - %s", " ".join(args))


def test_nginx_running_enabled_and_valid(host):
    service = host.service("nginx")
    assert service.is_running and service.is_enabled
    with host.sudo():
        assert host.run("nginx -t").rc == 0


def test_listens_on_http_and_https(host):
    with host.sudo():
        sockets = host.socket.get_listening_sockets()
    assert "tcp://0.0.0.0:80" in sockets
    assert "tcp://0.0.0.0:443" in sockets


def test_http_redirects_to_https(host):
    headers = curl(host, "http://localhost/some/path?q=1")
    assert headers.startswith("HTTP/1.1 301")
    assert "Location: https://localhost/some/path?q=1" in headers


def test_tls_served_with_security_headers(host):
    # No app runs behind it in this scenario: TLS answers, the proxy reports the bad gateway.
    headers = curl(host, "https://localhost/")
    assert headers.startswith("HTTP/2 502")
    assert "strict-transport-security: max-age=31536000" in headers.lower()
    assert "x-content-type-options: nosniff" in headers.lower()


def test_static_assets_cached_forever(host):
    with host.sudo():
        host.run("echo 'body{}' > /srv/fleetapp/static/app.0123abcd.css")
    headers = curl(host, "https://localhost/static/app.0123abcd.css").lower()
    assert headers.startswith("http/2 200")
    assert "cache-control: public, max-age=31536000, immutable" in headers
    assert "x-content-type-options: nosniff" in headers


def test_maintenance_switch(host):
    flag = "/var/www/fleetapp-maintenance/maintenance.on"
    with host.sudo():
        host.run(f"touch {flag}")
        try:
            page = host.run("curl -sk -w '%{http_code}' https://localhost/").stdout
        finally:
            host.run(f"rm -f {flag}")
    assert page.endswith("503")
    assert "Down for maintenance" in page


def test_maintenance_answers_json_under_api_with_retry_after(host):
    flag = "/var/www/fleetapp-maintenance/maintenance.on"
    with host.sudo():
        host.run(f"touch {flag}")
        try:
            headers = curl(host, "https://localhost/api/papers").lower()
            body = host.check_output("curl -sk https://localhost/api/papers")
        finally:
            host.run(f"rm -f {flag}")
    assert headers.startswith("http/2 503")
    assert "retry-after: 120" in headers and "content-type: application/json" in headers
    assert '"error": "maintenance"' in body


def test_maintenance_pages_are_installed(host):
    for page in ("maintenance.html", "maintenance.json"):
        installed = host.file(f"/var/www/fleetapp-maintenance/{page}")
        assert installed.exists and installed.mode == 0o644 and installed.user == "root"


def test_validator_rejects_a_broken_site(host):
    with host.sudo():
        host.run("echo 'server { listen 80; bogus_directive on; }' > /tmp/bad.conf")
        result = host.run("/usr/local/sbin/flaskfleet-nginx-check /tmp/bad.conf "
                          "/etc/nginx/conf.d/fleetapp.conf")
    assert result.rc != 0


def test_key_is_private(host):
    with host.sudo():
        key = host.file("/etc/nginx/tls/fleetapp.key")
        assert key.mode == 0o600 and key.user == "root"
