// A C# smoke test of the C API through P/Invoke (Mono, as Unity's
// scripting runtime): a download and a POST, results checked.
//
//   mono Smoke.exe DOWNLOAD_URL POST_URL    (libpollhttp_ffi.so on LD_LIBRARY_PATH)
//
// Prints "download <status> <bytes>" and "post <status> <bytes>"; exits 0
// only when both succeeded.
using System;
using System.Runtime.InteropServices;
using System.Text;

static class Ph
{
    const string Lib = "pollhttp_ffi";
    public const int OK = 0;

    [DllImport(Lib)] public static extern uint ph_version();
    [DllImport(Lib)] public static extern IntPtr ph_strerror(int code);
    [DllImport(Lib)] public static extern int ph_pool_new(out IntPtr pool);
    [DllImport(Lib)] public static extern void ph_pool_free(IntPtr pool);
    [DllImport(Lib)] public static extern int ph_pool_poll(IntPtr pool, IntPtr completions);
    [DllImport(Lib)] public static extern int ph_pool_wait(IntPtr pool, long timeoutMs, IntPtr ready);
    [DllImport(Lib)] public static extern int ph_pool_submit(IntPtr pool, IntPtr req, out ulong id);
    [DllImport(Lib)] public static extern int ph_pool_next_completion(IntPtr pool, out ulong id);
    [DllImport(Lib)] public static extern int ph_request_new(byte[] method, byte[] url, out IntPtr req);
    [DllImport(Lib)] public static extern void ph_request_free(IntPtr req);
    [DllImport(Lib)] public static extern int ph_request_add_header(IntPtr req, byte[] line);
    [DllImport(Lib)] public static extern int ph_request_set_body(IntPtr req, byte[] data, UIntPtr len);
    [DllImport(Lib)] public static extern int ph_completion_result(IntPtr pool, ulong id, out int result);
    [DllImport(Lib)] public static extern int ph_completion_status(IntPtr pool, ulong id, out int status);
    [DllImport(Lib)] public static extern int ph_completion_body(IntPtr pool, ulong id, out IntPtr data, out UIntPtr len);
    [DllImport(Lib)] public static extern int ph_completion_free(IntPtr pool, ulong id);

    // NUL-terminated UTF-8, as the C API takes strings.
    public static byte[] Utf8(string s) { return Encoding.UTF8.GetBytes(s + "\0"); }

    public static void Check(int code, string what)
    {
        if (code != OK)
            throw new Exception(what + ": " + Marshal.PtrToStringAnsi(ph_strerror(code)));
    }
}

static class Smoke
{
    // Submits `req` (freed here), polls until its completion, and returns
    // its status and body (copied out before the completion is freed).
    static int Fetch(IntPtr pool, IntPtr req, out byte[] body)
    {
        ulong id;
        Ph.Check(Ph.ph_pool_submit(pool, req, out id), "submit");
        Ph.ph_request_free(req);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        for (int round = 0; round < 100000; round++)
        {
            if (DateTime.UtcNow > deadline) break;
            Ph.Check(Ph.ph_pool_poll(pool, IntPtr.Zero), "poll");
            ulong done;
            if (Ph.ph_pool_next_completion(pool, out done) == Ph.OK)
            {
                if (done != id) throw new Exception("unexpected completion " + done);
                int result, status;
                IntPtr data;
                UIntPtr len;
                Ph.Check(Ph.ph_completion_result(pool, id, out result), "result");
                Ph.Check(Ph.ph_completion_status(pool, id, out status), "status");
                Ph.Check(Ph.ph_completion_body(pool, id, out data, out len), "body");
                body = new byte[(int)len.ToUInt64()];
                Marshal.Copy(data, body, 0, body.Length);
                Ph.Check(Ph.ph_completion_free(pool, id), "free");
                if (result != 0) throw new Exception("result " + result);
                return status;
            }
            Ph.Check(Ph.ph_pool_wait(pool, 50, IntPtr.Zero), "wait");
        }
        throw new Exception("no completion within the bounds");
    }

    static int Main(string[] args)
    {
        if (args.Length != 2) { Console.Error.WriteLine("usage: Smoke DOWNLOAD_URL POST_URL"); return 2; }
        Console.WriteLine("pollhttp " + Ph.ph_version());
        IntPtr pool;
        Ph.Check(Ph.ph_pool_new(out pool), "pool");
        try
        {
            IntPtr req;
            byte[] body;
            Ph.Check(Ph.ph_request_new(Ph.Utf8("GET"), Ph.Utf8(args[0]), out req), "request");
            int status = Fetch(pool, req, out body);
            Console.WriteLine("download " + status + " " + body.Length);
            if (status != 200 || body.Length != 1 << 20) return 1;

            byte[] payload = Encoding.UTF8.GetBytes("{\"engine\": \"mono\"}");
            Ph.Check(Ph.ph_request_new(Ph.Utf8("POST"), Ph.Utf8(args[1]), out req), "request");
            Ph.Check(Ph.ph_request_add_header(req, Ph.Utf8("Content-Type: application/json")), "header");
            Ph.Check(Ph.ph_request_set_body(req, payload, (UIntPtr)payload.Length), "body");
            status = Fetch(pool, req, out body);
            string text = Encoding.UTF8.GetString(body);
            Console.WriteLine("post " + status + " " + body.Length);
            if (status != 200 || !text.Contains("\"engine\": \"mono\"")) { Console.WriteLine(text); return 1; }

            // Bad input is an error code, not a crash.
            if (Ph.ph_request_new(Ph.Utf8("GET"), new byte[] { 0xff, 0 }, out req) != 3) return 1;
            return 0;
        }
        finally
        {
            Ph.ph_pool_free(pool);
        }
    }
}
