"""Load balancers: nginx valid and running, TLS served, HTTP redirected, headers set."""

testinfra_hosts = ["ansible://loadbalancers"]


def headers(host, url: str) -> str:
    return host.check_output("curl -sk -o /dev/null -D - %s", url).lower()


def test_nginx_running_enabled_and_valid(host):
    service = host.service("nginx")
    assert service.is_running and service.is_enabled
    with host.sudo():
        result = host.run("nginx -t")
    assert result.rc == 0, result.stderr


def test_listens_for_http_and_https(host):
    with host.sudo():
        sockets = host.socket.get_listening_sockets()
    assert "tcp://0.0.0.0:80" in sockets and "tcp://0.0.0.0:443" in sockets


def test_http_redirects_to_https(host):
    response = headers(host, "http://localhost/healthz")
    assert response.startswith("http/1.1 301")
    assert "location: https://" in response


def test_tls_served_with_security_headers(host):
    response = headers(host, "https://localhost/")
    assert response.startswith("http/2 ")
    assert "x-content-type-options: nosniff" in response
    assert "server: nginx\r" in response


def test_tls_handshake(host):
    out = host.run("echo | openssl s_client -connect localhost:443 -brief 2>&1").stdout
    assert "Protocol version: TLSv1.3" in out or "Protocol version: TLSv1.2" in out


def test_upstream_lists_every_app_host(host, fleet_inventory, app_name):
    with host.sudo():
        upstream = host.file(f"/etc/nginx/conf.d/{app_name}-upstream.conf").content_string
    for app in fleet_inventory.groups["app"]:
        assert fleet_inventory.hostvars[app]["fleet_private_address"] + ":" in upstream
