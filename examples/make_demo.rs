//! Writes the demo tree in `examples/demo/`: what a kubeadm node, a
//! laptop's kubeconfig, a cluster dump, an AKS-on-HCI node and an OpenStack
//! client leave on disk. Every key and token in it is fake and made here;
//! no private key is written.
//!
//!     cargo run --example make_demo -- examples/demo

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use std::path::Path;
use time::OffsetDateTime;
use time::macros::datetime;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn params(cn: &str, from: OffsetDateTime, to: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.not_before = from;
    p.not_after = to;
    p
}

fn ca(cn: &str, from: OffsetDateTime, to: OffsetDateTime) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut p = params(cn, from, to);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).expect("CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

fn leaf(ca: &Ca, cn: &str, from: OffsetDateTime, to: OffsetDateTime) -> String {
    let key = KeyPair::generate().expect("key");
    params(cn, from, to)
        .signed_by(&key, &ca.issuer)
        .expect("leaf")
        .pem()
}

/// A JWT with the given claims and a fake signature.
fn jwt(claims: &str) -> String {
    format!(
        "{}.{}.ZmFrZS1zaWduYXR1cmU",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/demo".into());
    let root = Path::new(&root);
    let _ = std::fs::remove_dir_all(root);

    // kubeadm: a 10-year CA and 1-year leaves issued on different days.
    let kube_ca = ca(
        "kubernetes",
        datetime!(2025-12-15 09:00 UTC),
        datetime!(2035-12-13 09:00 UTC),
    );
    let etcd_ca = ca(
        "etcd-ca",
        datetime!(2025-12-15 09:00 UTC),
        datetime!(2035-12-13 09:00 UTC),
    );
    let pki = "node/etc/kubernetes/pki";
    write(root, &format!("{pki}/ca.crt"), &kube_ca.pem);
    write(
        root,
        &format!("{pki}/apiserver.crt"),
        &leaf(
            &kube_ca,
            "kube-apiserver",
            datetime!(2025-12-15 09:00 UTC),
            datetime!(2026-12-15 09:00 UTC),
        ),
    );
    write(
        root,
        &format!("{pki}/front-proxy-client.crt"),
        &leaf(
            &kube_ca,
            "front-proxy-client",
            datetime!(2025-11-01 09:00 UTC),
            datetime!(2026-11-01 09:00 UTC),
        ),
    );
    write(root, &format!("{pki}/etcd/ca.crt"), &etcd_ca.pem);
    write(
        root,
        &format!("{pki}/etcd/server.crt"),
        &leaf(
            &etcd_ca,
            "node-1",
            datetime!(2025-11-28 09:00 UTC),
            datetime!(2026-11-28 09:00 UTC),
        ),
    );
    let admin = leaf(
        &kube_ca,
        "kubernetes-admin",
        datetime!(2025-12-15 09:00 UTC),
        datetime!(2026-12-15 09:00 UTC),
    );
    write(
        root,
        "node/etc/kubernetes/admin.conf",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: {}\ncontexts:\n- name: kubernetes-admin@kubernetes\n  context: {{cluster: kubernetes, user: kubernetes-admin}}\ncurrent-context: kubernetes-admin@kubernetes\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: {}\n",
            b64(&kube_ca.pem),
            b64(&admin)
        ),
    );

    // A laptop kubeconfig: OIDC, an exec plugin, a static token.
    let id_token = jwt(
        r#"{"iss":"https://login.example.com","sub":"alice@example.com","aud":"kubernetes","iat":1795766400,"exp":1795852800}"#,
    );
    let deploy_token = jwt(
        r#"{"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:ci:deployer","iat":1790000000,"exp":1798761600}"#,
    );
    write(
        root,
        "laptop/.kube/config",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://prod.example.com\n    certificate-authority: ../../node/etc/kubernetes/pki/ca.crt\ncontexts:\n- name: prod\n  context: {{cluster: prod, user: alice}}\ncurrent-context: prod\nusers:\n- name: alice\n  user:\n    auth-provider:\n      name: oidc\n      config:\n        idp-issuer-url: https://login.example.com\n        client-id: kubernetes\n        id-token: {id_token}\n- name: deployer\n  user:\n    token: {deploy_token}\n- name: eks-admin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: [eks, get-token, --cluster-name, prod]\n"
        ),
    );

    // `kubectl get secrets,configmaps -A -o yaml`.
    let ingress_ca = ca(
        "demo-issuer",
        datetime!(2026-01-01 00:00 UTC),
        datetime!(2031-01-01 00:00 UTC),
    );
    let ingress = leaf(
        &ingress_ca,
        "shop.example.com",
        datetime!(2026-11-25 00:00 UTC),
        datetime!(2027-02-23 00:00 UTC),
    );
    let legacy = jwt(
        r#"{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/namespace":"ci","sub":"system:serviceaccount:ci:builder"}"#,
    );
    write(
        root,
        "cluster-dump.yaml",
        &format!(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  type: kubernetes.io/tls\n  metadata:\n    name: shop-tls\n    namespace: web\n    annotations:\n      cert-manager.io/certificate-name: shop\n  data:\n    tls.crt: {}\n    ca.crt: {}\n- apiVersion: v1\n  kind: Secret\n  type: bootstrap.kubernetes.io/token\n  metadata:\n    name: bootstrap-token-abcdef\n    namespace: kube-system\n  data:\n    token-id: {}\n    token-secret: {}\n    expiration: {}\n    usage-bootstrap-authentication: {}\n- apiVersion: v1\n  kind: Secret\n  type: kubernetes.io/service-account-token\n  metadata:\n    name: builder-token\n    namespace: ci\n    annotations:\n      kubernetes.io/service-account.name: builder\n  data:\n    token: {}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: kube-root-ca.crt\n    namespace: web\n  data:\n    ca.crt: |\n{}",
            b64(&ingress),
            b64(&ingress_ca.pem),
            b64("abcdef"),
            b64("0123456789abcdef"),
            b64("2026-11-29T00:00:00Z"),
            b64("true"),
            b64(&legacy),
            kube_ca
                .pem
                .lines()
                .map(|l| format!("      {l}\n"))
                .collect::<String>()
        ),
    );

    // AKS on Azure Stack HCI: the cloud agent login file.
    let moc_ca = ca(
        "wssdcloudagent-ca",
        datetime!(2026-10-01 00:00 UTC),
        datetime!(2027-10-01 00:00 UTC),
    );
    let moc_token = jwt(
        r#"{"iss":"wssdcloudagent","sub":"nodeagent-node1","iat":1793577600,"exp":1798761600}"#,
    );
    write(
        root,
        "aks-hci/cloudlogin.yaml",
        &format!(
            "name: nodeagent-node1\ntoken: {moc_token}\ncertificate: {}\nclienttype: ExternalClient\ncloudfqdn: ca-cloudagent.contoso.local\ncloudport: 55000\ncloudauthport: 65000\nlocation: MocLocation\n",
            b64(&moc_ca.pem)
        ),
    );

    // OpenStack: `openstack token issue -f json`, 24-hour token.
    write(
        root,
        "openstack/token.json",
        "{\n  \"expires\": \"2026-11-23T04:00:54+0000\",\n  \"id\": \"gAAAAABdemoDEMOdemoDEMOdemoDEMOdemoDEMOdemoDEMOdemoDEMOdemoDEMOdemo\",\n  \"project_id\": \"3f1b4c\",\n  \"user_id\": \"9c2e7a\"\n}\n",
    );

    // A Secret volume as the kubelet mounts it (atomic writer).
    let stamp = "..2026_11_20_08_00_00.000000001";
    let mounted = leaf(
        &ingress_ca,
        "payments.internal",
        datetime!(2026-11-20 08:00 UTC),
        datetime!(2027-11-20 08:00 UTC),
    );
    write(root, &format!("mounted-secret/{stamp}/tls.crt"), &mounted);
    std::os::unix::fs::symlink(stamp, root.join("mounted-secret/..data")).unwrap();
    std::os::unix::fs::symlink("..data/tls.crt", root.join("mounted-secret/tls.crt")).unwrap();

    write(
        root,
        "README.md",
        "A demo tree for `lapse check examples/demo`. Written by `cargo run --example make_demo`;\nevery certificate and token here is fake and no private key is included.\n",
    );
}
